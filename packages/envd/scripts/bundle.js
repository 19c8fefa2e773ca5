// Placeholder until envd lands: the bundle step is wired into the build.
