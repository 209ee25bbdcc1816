// Timestamps must never be parsed in local time: run every test in an odd zone so such a bug shows.
process.env.TZ = 'Pacific/Chatham';

// aws-local-stepfunctions uses Promise.withResolvers, which Node 20 lacks (Node 22 has it).
if (!('withResolvers' in Promise)) {
  Object.assign(Promise, {
    withResolvers<T>() {
      let resolve!: (v: T | PromiseLike<T>) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}
process.env.FERRY_LOG_LEVEL ??= 'silent';
