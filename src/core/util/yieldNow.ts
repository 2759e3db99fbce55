/**
 * Lets the event loop run (IPC messages, timers) between compute steps. Awaiting tensor data can resolve as
 * microtasks only, so without this a cancel request would sit unread until a whole stage had finished.
 */
export function yieldNow(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
