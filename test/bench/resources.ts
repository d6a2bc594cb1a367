/** CPU time and peak RSS of this process over one measured interval. */
export interface ResourceUse {
  cpuMs: number;
  wallMs: number;
  peakRssBytes: number;
}

/** How often RSS is sampled; cheap (one /proc read), and fine enough to catch a growing queue. */
const RSS_SAMPLE_MS = 50;

/**
 * Starts measuring now. `stop()` returns CPU time (user + system), wall time and the largest RSS
 * seen. The sampling timer is unref()ed, so a forgotten meter never keeps the process alive.
 */
export function startResourceMeter(): { stop(): ResourceUse } {
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  let peakRssBytes = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peakRssBytes = Math.max(peakRssBytes, process.memoryUsage.rss());
  }, RSS_SAMPLE_MS);
  timer.unref();
  let result: ResourceUse | undefined;
  return {
    stop(): ResourceUse {
      if (result !== undefined) return result;
      clearInterval(timer);
      const cpu = process.cpuUsage(cpuStart);
      peakRssBytes = Math.max(peakRssBytes, process.memoryUsage.rss());
      result = { cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - wallStart, peakRssBytes };
      return result;
    },
  };
}
