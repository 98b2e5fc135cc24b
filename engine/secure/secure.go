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
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
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

// reviewTimeout bounds one TokenReview; reviewBackoff retries a failed
// review (a timeout, a 5xx), the values k8s.io/apiserver's options use.
const reviewTimeout = 10 * time.Second

var reviewBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}

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
	// certs is the serving certificate: a file pair that reloads itself, or a
	// static self-signed one.
	certs dynamiccertificates.CertKeyContentProvider
	files *dynamiccertificates.DynamicCertKeyPairContent // nil when self-signed
	tls   *dynamiccertificates.DynamicServingCertificateController
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
	authn, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous:                &apiserver.AnonymousAuthConfig{Enabled: false},
		TokenAccessReviewClient:  client.AuthenticationV1(),
		TokenAccessReviewTimeout: reviewTimeout,
		WebhookRetryBackoff:      &reviewBackoff,
		CacheTTL:                 opts.TokenCacheTTL,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("secure serving: authenticator: %w", err)
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: client.AuthorizationV1(),
		AllowCacheTTL:             opts.AllowCacheTTL,
		DenyCacheTTL:              opts.DenyCacheTTL,
		WebhookRetryBackoff:       &reviewBackoff,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("secure serving: authorizer: %w", err)
	}
	return newServer(opts, authn, authz)
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
		certFile, keyFile := filepath.Join(opts.CertDir, opts.CertName), filepath.Join(opts.CertDir, opts.KeyName)
		files, err := dynamiccertificates.NewDynamicServingContentFromFiles("metrics-serving-cert", certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("secure serving: load certificate %s and key %s: %w", certFile, keyFile, err)
		}
		s.certs, s.files = files, files
	} else {
		crt, key, err := cert.GenerateSelfSignedCertKey("localhost", []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, nil)
		if err != nil {
			return nil, fmt.Errorf("secure serving: generate a self-signed certificate: %w", err)
		}
		if s.certs, err = dynamiccertificates.NewStaticCertKeyContent("metrics-self-signed", crt, key); err != nil {
			return nil, fmt.Errorf("secure serving: self-signed certificate: %w", err)
		}
	}
	// HTTP/2 is not offered: its stream handling has been the source of
	// denial-of-service flaws (CVE-2023-44487), and a scrape does not need it.
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	s.tls = dynamiccertificates.NewDynamicServingCertificateController(base, nil, s.certs, nil, nil)
	if err := s.tls.RunOnce(); err != nil {
		return nil, fmt.Errorf("secure serving: %w", err)
	}
	s.certs.AddListener(s.tls)
	return s, nil
}

// Listener wraps l in TLS with the current certificate.
func (s *Server) Listener(l net.Listener) net.Listener {
	return tls.NewListener(l, &tls.Config{GetConfigForClient: s.tls.GetConfigForClient})
}

// Run reloads the certificate when its files change, until ctx is done. It
// returns at once for a self-signed certificate.
func (s *Server) Run(ctx context.Context) {
	if s.files == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.tls.Run(1, ctx.Done())
	}()
	s.files.Run(ctx, 1)
	<-done
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
