/** The page's places, in the URL's hash so the API needs no route per page and reloads keep the view. */
export type Route =
  | { page: 'try' }
  | { page: 'train'; jobId?: string }
  | { page: 'models'; version?: number }
  | { page: 'feedback' };

const JOB_ID = /^[A-Za-z0-9_-]{1,128}$/;

export function parseRoute(hash: string): Route {
  const [page, arg] = hash.replace(/^#\/?/, '').split('/');
  if (page === 'train') return arg && JOB_ID.test(arg) ? { page, jobId: arg } : { page };
  if (page === 'models') {
    const version = Number(arg);
    return arg && Number.isSafeInteger(version) && version >= 1 ? { page, version } : { page };
  }
  if (page === 'feedback') return { page };
  return { page: 'try' };
}

export function routeHash(route: Route): string {
  if (route.page === 'train') return route.jobId ? `#/train/${route.jobId}` : '#/train';
  if (route.page === 'models') return route.version ? `#/models/${route.version}` : '#/models';
  if (route.page === 'feedback') return '#/feedback';
  return '#/try';
}
