package main

import "runtime/debug"

// version is set at build time with -ldflags "-X main.version=..." (make build, the release
// archives, the Docker image). A plain `go install .../cmd/gpu-mcp@v0.1.0` sets no ldflags: the
// module version the go command recorded in the binary stands in.
var version string

func init() {
	if version == "" {
		version = moduleVersion(debug.ReadBuildInfo())
	}
}

// moduleVersion is the version the build info names: the module's version when the go command
// knew it (go install ...@version, or a pseudo-version from the VCS), else "(devel)" with the
// VCS revision where one was stamped, so that two development builds can still be told apart.
func moduleVersion(info *debug.BuildInfo, ok bool) string {
	const devel = "(devel)"
	if !ok || info == nil {
		return devel
	}
	if v := info.Main.Version; v != "" && v != devel {
		return v
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return devel
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if modified == "true" {
		revision += "-dirty"
	}
	return devel + " " + revision
}
