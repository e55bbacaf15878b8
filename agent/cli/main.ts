#!/usr/bin/env node
// The `edgeswarm` binary.
import '../polyfill.js';
import { buildProgram, reportError } from './program.js';

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    process.exitCode = reportError(err);
  }
}

void main();
