// prom-client files imported one by one (no exports map; the package types only its index): the
// default collectors, each registering its gauges or counters on `registry` and reading the
// process on collect, and the metric classes.
declare module 'prom-client/lib/metrics/*.js' {
  import type { Registry } from 'prom-client';
  const register: (registry: Registry, config?: { prefix?: string }) => void;
  export default register;
}

// The metric classes, imported from their own files (src/metrics/metrics.ts says why); the same
// classes as prom-client's index exports.
declare module 'prom-client/lib/counter.js' {
  export { Counter as default } from 'prom-client';
}
declare module 'prom-client/lib/gauge.js' {
  export { Gauge as default } from 'prom-client';
}
declare module 'prom-client/lib/histogram.js' {
  export { Histogram as default } from 'prom-client';
}
declare module 'prom-client/lib/registry.js' {
  export { Registry as default } from 'prom-client';
}
