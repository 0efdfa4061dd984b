#!/usr/bin/env node
// Thin launcher: the CLI is built into dist/bundle/ (`npm run build`: tsc, then scripts/bundle.mjs).
import '../dist/bundle/main.js';
