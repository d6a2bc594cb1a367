/**
 * How every benchmark entry point ends: exit with main()'s status (0 whatever PASS/MISS said, 1 if a
 * run broke, 2 for a bad environment), or 1 with the stack on stderr if main() itself threw.
 */
export function runBench(label: string, main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
      // Everything is closed by now; this only guards against a handle someone forgot.
      setTimeout(() => process.exit(code), 5_000).unref();
    },
    (err: unknown) => {
      process.stderr.write(`${label}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
