package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/rest"

	"github.com/wre-dev/wre/engine/modulestatus"
	"github.com/wre-dev/wre/engine/registry"
)

func init() {
	register(command{name: "status", summary: "show the modules an engine runs (GET /modules) as a table", run: statusCommand})
}

const statusUsage = `Usage: wre status [flags]

Prints the modules of a running engine, read from its /modules endpoint
(next to /metrics; e.g. kubectl -n wre-system port-forward deploy/wre 8443).
An engine run with --metrics-secure (deploy/ does) serves HTTPS and wants a
bearer token allowed to get /modules (ClusterRole wre-metrics-reader): the
kubeconfig's, or --token; its certificate is self-signed unless mounted:

  wre status --url https://localhost:8443 --insecure-skip-tls-verify \
    --token "$(kubectl -n wre-system create token <a ServiceAccount bound to wre-metrics-reader>)"`

// statusFlags are the flags of `wre status`.
type statusFlags struct {
	url, token, kubeconfig, caFile string
	insecure                       bool
	timeout                        time.Duration
}

func statusCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f statusFlags
	fs := subcommandFlags("wre status", statusUsage, stderr)
	fs.StringVar(&f.url, "url", "http://localhost:8080", "base URL of the engine's metrics server (https:// for --metrics-secure)")
	fs.StringVar(&f.token, "token", "", "bearer token for an https URL (default: the kubeconfig's credentials)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig whose credentials an https URL gets (default: $KUBECONFIG, then ~/.kube/config)")
	fs.StringVar(&f.caFile, "certificate-authority", "", "CA file that signed the engine's certificate, for an https URL")
	fs.BoolVar(&f.insecure, "insecure-skip-tls-verify", false, "accept any certificate of an https URL (the engine's self-signed one)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for the engine")
	_, code, ok := parseArgs(fs, args, 0, "no arguments")
	if !ok {
		return code
	}
	client, err := f.client()
	if err != nil {
		fmt.Fprintf(stderr, "wre status: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	statuses, err := registry.FetchStatuses(ctx, client, strings.TrimSuffix(f.url, "/")+"/modules")
	if err != nil {
		fmt.Fprintf(stderr, "wre status: %v\n", err)
		return exitError
	}
	printStatus(stdout, statuses, time.Now())
	return exitOK
}

// client returns the HTTP client of f.url: the default one for http://; for
// https:// one that verifies the engine's certificate as told and sends the
// token, or the kubeconfig's credentials (token, token file, exec plugin),
// which client-go's transport resolves and refreshes as kubectl's would.
// Credentials never travel over plain HTTP.
func (f statusFlags) client() (*http.Client, error) {
	if !strings.HasPrefix(f.url, "https://") {
		if f.token != "" || f.caFile != "" || f.insecure {
			return nil, errors.New("--token, --certificate-authority and --insecure-skip-tls-verify need an https:// --url")
		}
		return nil, nil
	}
	cfg := &rest.Config{BearerToken: f.token}
	if f.token == "" {
		kc, err := loadConfig(f.kubeconfig)
		if err != nil {
			return nil, err
		}
		cfg = &rest.Config{BearerToken: kc.BearerToken, BearerTokenFile: kc.BearerTokenFile, ExecProvider: kc.ExecProvider, AuthProvider: kc.AuthProvider}
	}
	cfg.Host = f.url
	cfg.TLSClientConfig = rest.TLSClientConfig{Insecure: f.insecure, CAFile: f.caFile}
	return rest.HTTPClientFor(cfg)
}

// printStatus writes one row per module; digests are shortened as in image
// references (sha256: and 12 hex digits).
func printStatus(w io.Writer, statuses []registry.Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPHASE\tDIGEST\tABI\tINSTANCES\tIDLE-CLOSED\tRECONCILES\tERRORS\tAGE\tLAST ERROR")
	for _, s := range statuses {
		digest, age := "-", "-"
		if s.Digest != "" {
			digest = s.Digest[:min(len(s.Digest), len("sha256:")+12)]
		}
		if s.LoadedAt != nil {
			age = now.Sub(*s.LoadedAt).Round(time.Second).String()
		}
		lastErr := s.LastError
		if lastErr == "" {
			lastErr = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", s.Name, modulestatus.Phase(s), digest, orDash(s.ABI), s.Instances, s.IdleClosed, s.Reconciles, s.ReconcileErrors, age, lastErr)
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
