/**
 * A timeout AbortSignal that can be combined with AbortSignal.any() safely.
 *
 * Node 20's AbortSignal.any() holds its source signals weakly, and AbortSignal.timeout()'s timer
 * holds its signal weakly too, so `AbortSignal.any([outer, AbortSignal.timeout(ms)])` can lose the
 * timeout to garbage collection: the composite then never times out (nodejs/node#57736, seen here
 * as a config server request that waited 5 s despite a 300 ms timeout). Here the timer closure
 * holds the controller strongly until it fires; the timer is unref'd, so it never keeps the
 * process alive.
 */
export function timeoutSignal(ms: number): AbortSignal {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    // The same reason AbortSignal.timeout() gives: callers tell timeouts by name.
    controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  }, ms);
  timer.unref();
  return controller.signal;
}
