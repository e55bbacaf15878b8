import '../agent/polyfill.js';
