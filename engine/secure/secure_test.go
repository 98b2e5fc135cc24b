package secure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/cert"
)

// Tokens the stand-in authenticator knows. The delegation to the API server
// (TokenReview, SubjectAccessReview) is tested against a real one in
// engine/manager and test/deploy/cluster; here the mapping of its answers
// onto HTTP is.
const (
	readerToken  = "reader-token-0123456789"
	nobodyToken  = "nobody-token-0123456789"
	expiredToken = "expired-token-0123456789"
)

var tokens = authenticator.TokenFunc(func(_ context.Context, token string) (*authenticator.Response, bool, error) {
	switch token {
	case readerToken:
		return &authenticator.Response{User: &user.DefaultInfo{Name: "reader"}}, true, nil
	case nobodyToken:
		return &authenticator.Response{User: &user.DefaultInfo{Name: "nobody"}}, true, nil
	case expiredToken:
		return nil, false, errors.New("token has expired")
	}
	return nil, false, nil
})

// rbac allows reader to get /metrics and fails for the path /broken.
type rbac struct {
	mu   sync.Mutex
	seen []authorizer.Attributes
}

func (a *rbac) Authorize(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	a.mu.Lock()
	a.seen = append(a.seen, attrs)
	a.mu.Unlock()
	switch {
	case attrs.GetPath() == "/broken":
		return authorizer.DecisionNoOpinion, "", errors.New("subjectaccessreviews: connection refused")
	case attrs.GetUser().GetName() == "reader" && attrs.GetVerb() == "get" && !attrs.IsResourceRequest():
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "no RBAC policy matched", nil
}

// logs collects log lines up to V(1).
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, prefix+" "+args)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// serve runs s with a handler that answers "secret metrics" and returns its
// address.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: s.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "secret metrics")
	})), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(s.Listener(l))
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return l.Addr().String()
}

func insecureClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
}

func get(t *testing.T, c *http.Client, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestHandler(t *testing.T) {
	var log logs
	authz := &rbac{}
	s, err := newServer(Options{Logger: funcr.New(log.add, funcr.Options{Verbosity: 1})}, bearertoken.New(tokens), authorizer.AuthorizerFunc(authz.Authorize))
	require.NoError(t, err)
	base := "https://" + serve(t, s)
	c := insecureClient()

	for _, tc := range []struct {
		name, path, token string
		code              int
		log               string
	}{
		{"no token", "/metrics", "", http.StatusUnauthorized, "no bearer token"},
		{"unknown token", "/metrics", "garbage-token-0123456789", http.StatusUnauthorized, "invalid bearer token"},
		{"expired token", "/metrics", expiredToken, http.StatusUnauthorized, "token has expired"},
		{"token without the right", "/metrics", nobodyToken, http.StatusForbidden, `"user"="nobody"`},
		{"the right", "/metrics", readerToken, http.StatusOK, ""},
		{"review fails", "/broken", readerToken, http.StatusInternalServerError, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, c, base+tc.path, tc.token)
			assert.Equal(t, tc.code, code, body)
			if tc.code == http.StatusOK {
				assert.Equal(t, "secret metrics", body)
				return
			}
			assert.NotContains(t, body, "secret metrics")
			assert.Contains(t, log.String(), tc.log)
		})
	}
	assert.Contains(t, log.String(), `"path"="/metrics"`)
	for _, tok := range []string{readerToken, nobodyToken, expiredToken, "garbage-token"} {
		assert.NotContains(t, log.String(), tok, "token material in the logs")
	}

	authz.mu.Lock()
	require.NotEmpty(t, authz.seen)
	a := authz.seen[0]
	authz.mu.Unlock()
	assert.Equal(t, "get", a.GetVerb())
	assert.Equal(t, "/metrics", a.GetPath())
	assert.False(t, a.IsResourceRequest())

	t.Run("denials are logged at V(1) only", func(t *testing.T) {
		var quiet logs
		s, err := newServer(Options{Logger: funcr.New(quiet.add, funcr.Options{})}, bearertoken.New(tokens), authorizer.AuthorizerFunc(authz.Authorize))
		require.NoError(t, err)
		code, _ := get(t, c, "https://"+serve(t, s)+"/metrics", nobodyToken)
		assert.Equal(t, http.StatusForbidden, code)
		assert.Empty(t, quiet.String())
	})
}

// peerCert returns the certificate addr serves.
func peerCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
	require.NoError(t, err)
	defer conn.Close()
	state := conn.ConnectionState()
	assert.Equal(t, "http/1.1", state.NegotiatedProtocol, "HTTP/2 is not offered")
	return state.PeerCertificates[0]
}

func TestSelfSigned(t *testing.T) {
	s, err := newServer(Options{}, bearertoken.New(tokens), authorizer.AuthorizerFunc((&rbac{}).Authorize))
	require.NoError(t, err)
	s.Run(t.Context()) // returns at once: nothing to reload
	addr := serve(t, s)
	crt := peerCert(t, addr)
	assert.NoError(t, crt.VerifyHostname("localhost"))
	assert.NoError(t, crt.VerifyHostname("127.0.0.1"))

	_, err = tls.Dial("tcp", addr, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11, InsecureSkipVerify: true})
	assert.Error(t, err, "TLS 1.1 is refused")
}

// writeCert writes a new certificate for host into dir as a mounted Secret
// changes: the files are replaced by rename.
func writeCert(t *testing.T, dir, host string) {
	t.Helper()
	crt, key, err := cert.GenerateSelfSignedCertKey(host, nil, nil)
	require.NoError(t, err)
	for name, data := range map[string][]byte{"tls.crt": crt, "tls.key": key} {
		tmp := filepath.Join(dir, "."+name+".tmp")
		require.NoError(t, os.WriteFile(tmp, data, 0o600))
		require.NoError(t, os.Rename(tmp, filepath.Join(dir, name)))
	}
}

func TestCertDirReload(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last: after the server's cleanup
	dir := t.TempDir()
	writeCert(t, dir, "first.example")
	s, err := newServer(Options{CertDir: dir}, bearertoken.New(tokens), authorizer.AuthorizerFunc((&rbac{}).Authorize))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		s.Run(ctx)
	}()
	addr := serve(t, s)
	assert.Equal(t, []string{"first.example"}, peerCert(t, addr).DNSNames)

	writeCert(t, dir, "second.example")
	require.Eventually(t, func() bool {
		return slicesEqual(peerCert(t, addr).DNSNames, []string{"second.example"})
	}, 30*time.Second, 50*time.Millisecond, "the rotated certificate is served")

	cancel()
	<-ran

	t.Run("files gone before Run", func(t *testing.T) {
		var log logs
		s, err := newServer(Options{CertDir: dir, Logger: funcr.New(log.add, funcr.Options{})}, bearertoken.New(tokens), authorizer.AuthorizerFunc((&rbac{}).Authorize))
		require.NoError(t, err)
		require.NoError(t, os.Remove(filepath.Join(dir, "tls.key")))
		s.Run(t.Context()) // returns at once
		assert.Contains(t, log.String(), "serving the one loaded at start")
		assert.Equal(t, []string{"second.example"}, peerCert(t, serve(t, s)).DNSNames)
	})
}

func slicesEqual(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(garbage, "tls.crt"), []byte("not a certificate"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(garbage, "tls.key"), []byte("not a key"), 0o600))
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		opts Options
		err  string
	}{
		{"no config", Options{}, "Options.Config is required"},
		{"negative TTL", Options{Config: cfg, DenyCacheTTL: -time.Second}, "must not be negative"},
		{"missing files", Options{Config: cfg, CertDir: dir}, filepath.Join(dir, "tls.crt")},
		{"not a certificate", Options{Config: cfg, CertDir: garbage}, "load certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			assert.ErrorContains(t, err, tc.err)
		})
	}
	s, err := New(Options{Config: cfg})
	require.NoError(t, err, "New does not contact the API server")
	code, _ := get(t, insecureClient(), "https://"+serve(t, s)+"/metrics", "")
	assert.Equal(t, http.StatusUnauthorized, code)
}
