package main

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestVersionLine(t *testing.T) {
	goRelease := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	tests := []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "wre (unknown) (" + goRelease + ")"},
		{"go install of a tag", &debug.BuildInfo{Main: debug.Module{Version: "v0.3.0"}}, "wre v0.3.0 (" + goRelease + ")"},
		{"checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "1a2b3c4d5e6f7a8b9c0d"}, {Key: "vcs.modified", Value: "false"}}},
			"wre (devel) (commit 1a2b3c4d5e6f, " + goRelease + ")"},
		{"dirty checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "1a2b3c4d5e6f7a8b9c0d"}, {Key: "vcs.modified", Value: "true"}}},
			"wre (devel) (commit 1a2b3c4d5e6f+modified, " + goRelease + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, versionLine(tt.info))
		})
	}
}

func TestVersionCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, exitOK, dispatch(t.Context(), []string{"version"}, &stdout, &stderr), stderr.String())
	assert.Regexp(t, `^wre \S+ \(.*`+runtime.Version()+`.*\)\n$`, stdout.String())
	assert.Equal(t, exitUsage, dispatch(t.Context(), []string{"version", "extra"}, &stdout, &stderr))
}
