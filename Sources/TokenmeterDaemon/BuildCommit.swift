// The git commit the binary is built from. `scripts/install.sh` writes BuildCommit.generated.swift (ignored by
// git) and builds with -DTOKENMETER_BUILD_COMMIT; any other build reports "unknown".
#if !TOKENMETER_BUILD_COMMIT
let buildGitCommit = "unknown"
#endif
