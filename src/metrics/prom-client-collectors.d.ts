// prom-client's individual default collectors (no exports map; the package has no types for
// them). Each registers its gauges or counters on `registry` and reads the process on collect.
declare module 'prom-client/lib/metrics/*.js' {
  import type { Registry } from 'prom-client';
  const register: (registry: Registry, config?: { prefix?: string }) => void;
  export default register;
}
