/**
 * The API key, when the service asks for one (a 401): asked for in a dialog and kept in
 * sessionStorage, so it is gone when the tab closes and never sits in localStorage.
 */
const STORAGE_KEY = 'digit-service.api-key';

export function storedApiKey(): string | null {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function forgetApiKey(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

let pending: Promise<string | null> | undefined;

/** Shows the key dialog (once, however many requests are waiting); null when the person cancels. */
export function askApiKey(reason: string): Promise<string | null> {
  pending ??= showDialog(reason).finally(() => {
    pending = undefined;
  });
  return pending;
}

function showDialog(reason: string): Promise<string | null> {
  const dialog = document.querySelector<HTMLDialogElement>('#api-key-dialog')!;
  const input = dialog.querySelector<HTMLInputElement>('#api-key-input')!;
  dialog.querySelector('#api-key-reason')!.textContent = reason;
  input.value = '';
  // A method="dialog" form sets returnValue to the button pressed; Escape leaves it as it was.
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        const key = dialog.returnValue === 'use' ? input.value.trim() : '';
        if (key) sessionStorage.setItem(STORAGE_KEY, key);
        resolve(key || null);
      },
      { once: true },
    );
  });
}
