/**
 * What the names of a zip's entries mean, before any data is read: what operating systems add and
 * nobody uploads on purpose (ignored silently), and which files are images by their name.
 */

const IMAGE_EXTENSION = /\.(png|jpe?g)$/i;
const SYSTEM_FILES = new Set(['thumbs.db', 'desktop.ini']);

/**
 * macOS's resource forks (`__MACOSX/`, `._name`), dotfiles such as `.DS_Store` or `.git/`, and
 * Windows' `Thumbs.db`: left out without being listed as skipped.
 */
export function isIgnoredEntry(name: string): boolean {
  const parts = name.split('/');
  const base = parts.at(-1)!.toLowerCase();
  return parts.some((part) => part === '__MACOSX' || part.startsWith('.')) || SYSTEM_FILES.has(base);
}

export function isImageName(name: string): boolean {
  return IMAGE_EXTENSION.test(name);
}

export function baseName(name: string): string {
  return name.split('/').at(-1)!;
}
