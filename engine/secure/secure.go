package secure

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/request/websocket"
	tokencache "k8s.io/apiserver/pkg/authentication/token/cache"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/cert"
)

// Defaults of Options.
const (
	DefaultCertName = "tls.crt"
	DefaultKeyName  = "tls.key"
	// DefaultCacheTTL is how long a TokenReview or SubjectAccessReview answer
	// is reused: k8s.io/apiserver's own default for delegated authentication
	// and authorization.
	DefaultCacheTTL = 10 * time.Second
)

// Options configure a Server.
type Options struct {
	// Config reaches the API server that reviews tokens and rights. Required.
	Config *rest.Config
	// CertDir holds the serving certificate and key (a mounted Secret of type
	// kubernetes.io/tls); they are reloaded when they change. Defaults to "":
	// a self-signed certificate generated at start.
	CertDir string
	// CertName and KeyName are the file names in CertDir. Default to
	// DefaultCertName ("tls.crt") and DefaultKeyName ("tls.key").
	CertName, KeyName string
	// TokenCacheTTL is how long a TokenReview answer is reused. Defaults to
	// DefaultCacheTTL (10 s).
	TokenCacheTTL time.Duration
	// AllowCacheTTL and DenyCacheTTL are how long an allowing or denying
	// SubjectAccessReview answer is reused. Default to DefaultCacheTTL (10 s).
	AllowCacheTTL, DenyCacheTTL time.Duration
	// Logger receives the denials (at V(1)). Defaults to logr.Discard().
	Logger logr.Logger
}

// Server authenticates and authorizes requests and serves them over TLS; see
// the package documentation.
type Server struct {
	authn authenticator.Request
	authz authorizer.Authorizer
	log   logr.Logger
	// cert is served to every client; Run replaces it when the files change.
	cert atomic.Pointer[tls.Certificate]
	// certFile and keyFile are "" for a self-signed certificate.
	certFile, keyFile string
}

// New validates opts, fills their defaults, builds the delegating
// authenticator and authorizer and loads (or generates) the certificate. It
// does not contact the API server.
func New(opts Options) (*Server, error) {
	if opts.Config == nil {
		return nil, errors.New("secure serving: Options.Config is required")
	}
	for _, ttl := range []*time.Duration{&opts.TokenCacheTTL, &opts.AllowCacheTTL, &opts.DenyCacheTTL} {
		if *ttl < 0 {
			return nil, errors.New("secure serving: cache TTLs must not be negative")
		}
		if *ttl == 0 {
			*ttl = DefaultCacheTTL
		}
	}
	client, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("secure serving: %w", err)
	}
	// A bearer token (header, or websocket protocol for a browser), reviewed
	// and its answer cached as k8s.io/apiserver's delegating authenticator
	// does; every authenticated caller is in system:authenticated.
	tokens := tokencache.New(tokenReviewer{client.AuthenticationV1().TokenReviews()}, false, opts.TokenCacheTTL, opts.TokenCacheTTL)
	authn := group.NewAuthenticatedGroupAdder(union.New(bearertoken.New(tokens), websocket.NewProtocolAuthenticator(tokens)))
	authz := &accessReviewer{
		client: client.AuthorizationV1().SubjectAccessReviews(), cache: utilcache.NewLRUExpireCache(accessCacheSize),
		allowTTL: opts.AllowCacheTTL, denyTTL: opts.DenyCacheTTL,
	}
	return newServer(opts, authn, authorizer.AuthorizerFunc(authz.Authorize))
}

// newServer is New with the authenticator and authorizer given.
func newServer(opts Options, authn authenticator.Request, authz authorizer.Authorizer) (*Server, error) {
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	s := &Server{authn: authn, authz: authz, log: opts.Logger}
	if opts.CertDir != "" {
		if opts.CertName == "" {
			opts.CertName = DefaultCertName
		}
		if opts.KeyName == "" {
			opts.KeyName = DefaultKeyName
		}
		s.certFile, s.keyFile = filepath.Join(opts.CertDir, opts.CertName), filepath.Join(opts.CertDir, opts.KeyName)
		c, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
		if err != nil {
			return nil, fmt.Errorf("secure serving: load certificate %s and key %s: %w", s.certFile, s.keyFile, err)
		}
		s.cert.Store(&c)
		return s, nil
	}
	crt, key, err := cert.GenerateSelfSignedCertKey("localhost", []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, nil)
	if err != nil {
		return nil, fmt.Errorf("secure serving: generate a self-signed certificate: %w", err)
	}
	c, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return nil, fmt.Errorf("secure serving: self-signed certificate: %w", err)
	}
	s.cert.Store(&c)
	return s, nil
}

// Listener wraps l in TLS with the current certificate. HTTP/2 is not
// offered: its stream handling has been the source of denial-of-service
// flaws (CVE-2023-44487), and a scrape does not need it.
func (s *Server) Listener(l net.Listener) net.Listener {
	return tls.NewListener(l, &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil },
	})
}

// Run reloads the certificate when its files change, until ctx is done:
// k8s.io/apiserver's file watcher (inotify, with a re-read every minute, and
// a re-added watch when a mounted Secret swaps its files) reads them, and a
// pair that does not match is skipped until it does. It returns at once for
// a self-signed certificate.
func (s *Server) Run(ctx context.Context) {
	if s.certFile == "" {
		return
	}
	// The constructor leaks its queue's goroutine when it fails to load the
	// pair: check first.
	_, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	var files *dynamiccertificates.DynamicCertKeyPairContent
	if err == nil {
		files, err = dynamiccertificates.NewDynamicServingContentFromFiles("metrics-serving-cert", s.certFile, s.keyFile)
	}
	if err != nil { // the files changed since New into something unusable
		s.log.Error(err, "Not watching the serving certificate for changes: serving the one loaded at start")
		return
	}
	l := reloader{s: s, files: files}
	files.AddListener(l)
	l.Enqueue() // a change between New and the watch above
	files.Run(ctx, 1)
}

// reloader installs the certificate files has read (a matching pair).
type reloader struct {
	s     *Server
	files *dynamiccertificates.DynamicCertKeyPairContent
}

func (r reloader) Enqueue() {
	c, err := tls.X509KeyPair(r.files.CurrentCertKeyContent())
	if err != nil { // checked by files before it calls Enqueue
		r.s.log.Error(err, "Ignoring the new serving certificate")
		return
	}
	r.s.cert.Store(&c)
	r.s.log.Info("Loaded the serving certificate", "file", r.s.certFile)
}

// Handler serves h to authenticated, authorized requests only.
func (s *Server) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok, err := s.authn.AuthenticateRequest(r)
		if err != nil || !ok {
			// err names the cause (an invalid token, an unreachable API
			// server), never the token itself.
			s.log.V(1).Info("Denied an unauthenticated request", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", reason(err, "no bearer token"))
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		attrs := authorizer.AttributesRecord{
			User:            res.User,
			Verb:            strings.ToLower(r.Method),
			Path:            r.URL.Path,
			ResourceRequest: false,
		}
		decision, why, err := s.authz.Authorize(r.Context(), attrs)
		if err != nil {
			s.log.Error(err, "Authorization failed", "path", r.URL.Path, "user", res.User.GetName())
			http.Error(w, "Authorization failed", http.StatusInternalServerError)
			return
		}
		if decision != authorizer.DecisionAllow {
			s.log.V(1).Info("Denied an unauthorized request", "path", r.URL.Path, "remote", r.RemoteAddr, "user", res.User.GetName(), "verb", attrs.Verb, "reason", why)
			http.Error(w, fmt.Sprintf("Forbidden: user %q may not %s %s", res.User.GetName(), attrs.Verb, r.URL.Path), http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func reason(err error, otherwise string) string {
	if err != nil {
		return err.Error()
	}
	return otherwise
}
