package secure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/util/retry"
)

// The two reviews below are what k8s.io/apiserver's delegating webhooks
// (plugin/pkg/authenticator/token/webhook, plugin/pkg/authorizer/webhook)
// send, through the typed client: those packages would add 31 MB to the
// binary (gRPC, OpenTelemetry and CEL come with them; see
// docs/operations.md#metrics-endpoint-security). Their caching is kept:
// k8s.io/apiserver's token cache in front of TokenReviews, apimachinery's
// LRU expiring cache in front of SubjectAccessReviews.

// reviewTimeout bounds one review; reviewBackoff retries a transient failure
// (a timeout, 429, 5xx, a refused connection): k8s.io/apiserver's values.
const reviewTimeout = 10 * time.Second

var reviewBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}

// transient reports whether a review is worth retrying.
func transient(err error) bool {
	var netErr net.Error
	return apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) ||
		errors.As(err, &netErr)
}

// review runs create with the timeout, retrying transient failures.
func review(ctx context.Context, create func(ctx context.Context) error) error {
	return retry.OnError(reviewBackoff, transient, func() error {
		ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
		defer cancel()
		return create(ctx)
	})
}

// tokenReviewer authenticates a bearer token with a TokenReview.
type tokenReviewer struct {
	client authenticationclient.TokenReviewInterface
}

func (r tokenReviewer) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	var res *authenticationv1.TokenReview
	err := review(ctx, func(ctx context.Context) (err error) {
		res, err = r.client.Create(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		return err
	})
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("TokenReview: %w", err)
	case !res.Status.Authenticated && res.Status.Error != "":
		return nil, false, errors.New(res.Status.Error) // the API server's reason; it does not repeat the token
	case !res.Status.Authenticated:
		return nil, false, nil
	}
	u := res.Status.User
	var extra map[string][]string
	for k, v := range u.Extra {
		if extra == nil {
			extra = map[string][]string{}
		}
		extra[k] = v
	}
	return &authenticator.Response{User: &user.DefaultInfo{Name: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra}}, true, nil
}

// accessReviewer authorizes a non-resource request with a
// SubjectAccessReview, caching allowing answers for allowTTL and the others
// for denyTTL; failures are not cached.
type accessReviewer struct {
	client            authorizationclient.SubjectAccessReviewInterface
	cache             *utilcache.LRUExpireCache
	allowTTL, denyTTL time.Duration
}

// accessCacheSize bounds the answers kept: one per caller and path.
const accessCacheSize = 1024

type answer struct {
	decision authorizer.Decision
	reason   string
}

func (r *accessReviewer) Authorize(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	u := a.GetUser()
	spec := authorizationv1.SubjectAccessReviewSpec{
		User: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(),
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: a.GetPath(), Verb: a.GetVerb()},
	}
	for k, v := range u.GetExtra() {
		if spec.Extra == nil {
			spec.Extra = map[string]authorizationv1.ExtraValue{}
		}
		spec.Extra[k] = v
	}
	key, err := json.Marshal(spec)
	if err != nil {
		return authorizer.DecisionNoOpinion, "", err
	}
	if v, ok := r.cache.Get(string(key)); ok {
		ans := v.(answer)
		return ans.decision, ans.reason, nil
	}
	var res *authorizationv1.SubjectAccessReview
	err = review(ctx, func(ctx context.Context) (err error) {
		res, err = r.client.Create(ctx, &authorizationv1.SubjectAccessReview{Spec: spec}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return authorizer.DecisionNoOpinion, "", fmt.Errorf("SubjectAccessReview: %w", err)
	}
	ans, ttl := answer{authorizer.DecisionNoOpinion, res.Status.Reason}, r.denyTTL
	switch {
	case res.Status.Allowed:
		ans.decision, ttl = authorizer.DecisionAllow, r.allowTTL
	case res.Status.EvaluationError != "":
		ans.reason = fmt.Sprintf("%s (evaluation error: %s)", ans.reason, res.Status.EvaluationError)
	}
	r.cache.Add(string(key), ans, ttl)
	return ans.decision, ans.reason, nil
}
