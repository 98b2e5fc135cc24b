package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDockerfile checks the properties of the image that Docker cannot prove
// here: a static build of ./cmd/wre on distroless/static as a non-root user.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(RepoRoot(), "Dockerfile"))
	require.NoError(t, err)
	df := string(data)
	froms := regexp.MustCompile(`(?m)^FROM[ \t]+(.+)$`).FindAllStringSubmatch(df, -1)
	require.Len(t, froms, 2, "a build stage and a runtime stage")
	assert.Equal(t, "gcr.io/distroless/static:nonroot", strings.TrimSpace(froms[1][1]))
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w"`, "./cmd/wre", "USER 65532:65532"} {
		assert.Contains(t, df, want)
	}
}
