// Preloaded (node --import) into a child whose stdin is a pipe from its
// parent, e.g. the agent `npm start` runs in its own process group: when the
// pipe ends, the parent is gone, whether it stopped in order or was killed,
// and the child stops as on SIGTERM instead of outliving it.
process.stdin.on("end", () => process.kill(process.pid, "SIGTERM"));
process.stdin.on("error", () => process.kill(process.pid, "SIGTERM"));
process.stdin.resume();
