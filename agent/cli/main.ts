#!/usr/bin/env node
// The `edgeswarm` binary.
import '../polyfill.js';
import { buildProgram, reportError } from './program.js';

/**
 * The reader of our output went away (`edgeswarm kv ls | head -1`): stop quietly, as Unix tools
 * do, instead of an unhandled 'error' event with a stack trace.
 */
function isClosedPipe(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'EPIPE';
}

process.stdout.on('error', (err) => {
  if (isClosedPipe(err)) process.exit(0);
  throw err;
});

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (isClosedPipe(err)) process.exit(0);
    process.exitCode = reportError(err);
  }
}

void main();
