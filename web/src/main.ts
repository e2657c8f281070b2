import './styles.css';
import { forgetApiKey, storedApiKey } from './api/api-key.js';
import { parseRoute, type Route } from './logic/route.js';
import { feedbackPage } from './pages/feedback-page.js';
import { modelsPage } from './pages/models-page.js';
import type { Page } from './pages/page.js';
import { trainPage } from './pages/train-page.js';
import { tryPage } from './pages/try-page.js';

const main = document.querySelector<HTMLElement>('#page')!;
const keyButton = document.querySelector<HTMLButtonElement>('#forget-key')!;
let current: Page | undefined;

function open(route: Route): void {
  current?.close();
  main.replaceChildren();
  if (route.page === 'train') current = trainPage(main, route.jobId);
  else if (route.page === 'models') current = modelsPage(main, route.version);
  else if (route.page === 'feedback') current = feedbackPage(main);
  else current = tryPage(main);
  for (const link of document.querySelectorAll<HTMLAnchorElement>('nav a[data-page]')) {
    if (link.dataset.page === route.page) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  showKeyButton();
  main.focus({ preventScroll: true });
}

function showKeyButton(): void {
  keyButton.hidden = storedApiKey() === null;
}

keyButton.addEventListener('click', () => {
  forgetApiKey();
  showKeyButton();
});
document.querySelector('#api-key-dialog')!.addEventListener('close', showKeyButton);
window.addEventListener('hashchange', () => open(parseRoute(location.hash)));
open(parseRoute(location.hash));
