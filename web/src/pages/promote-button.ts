import { apiCall } from '../api/client.js';
import { errorText, h } from '../dom.js';
import { PRODUCTION } from '../logic/aliases.js';

/** PUT /models/aliases/production: the API asks for its key when it has one (see api/client.ts). */
export function promoteButton(
  version: number,
  isProduction: boolean,
  status: HTMLElement,
  done: () => void,
): HTMLButtonElement {
  const button = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      disabled: isProduction,
      'aria-label': `Promote version ${version} to ${PRODUCTION}`,
    },
    isProduction ? `Is ${PRODUCTION}` : `Promote to ${PRODUCTION}`,
  );
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await apiCall((api) =>
        api.PUT('/models/aliases/{name}', { params: { path: { name: PRODUCTION } }, body: { version } }),
      );
      status.textContent = `Version ${version} is now ${PRODUCTION}.`;
      done();
    } catch (error) {
      status.textContent = `Could not promote version ${version}: ${errorText(error)}`;
      button.disabled = false;
    }
  });
  return button;
}
