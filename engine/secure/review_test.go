package secure

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// These tests check how the reviews' answers are read and cached; what the
// API server answers is tested against a real one (engine/manager's
// TestSecureMetrics, test/deploy/cluster).

func TestTokenReviewer(t *testing.T) {
	client := fake.NewClientset()
	calls := 0
	client.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview)
		switch tr.Spec.Token {
		case "good":
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{
				Username: "system:serviceaccount:ns:sa", UID: "u1", Groups: []string{"system:serviceaccounts"},
				Extra: map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"p"}}}}
		case "expired":
			tr.Status = authenticationv1.TokenReviewStatus{Error: "service account token has expired"}
		case "flaky":
			if calls == 1 {
				return true, nil, apierrors.NewServiceUnavailable("etcd")
			}
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: "flaky"}}
		case "broken":
			return true, nil, apierrors.NewBadRequest("no")
		}
		return true, tr, nil
	})
	r := tokenReviewer{client.AuthenticationV1().TokenReviews()}

	res, ok, err := r.AuthenticateToken(t.Context(), "good")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, &user.DefaultInfo{Name: "system:serviceaccount:ns:sa", UID: "u1", Groups: []string{"system:serviceaccounts"},
		Extra: map[string][]string{"authentication.kubernetes.io/pod-name": {"p"}}}, res.User)

	_, ok, err = r.AuthenticateToken(t.Context(), "expired")
	assert.False(t, ok)
	assert.EqualError(t, err, "service account token has expired")
	_, ok, err = r.AuthenticateToken(t.Context(), "unknown")
	assert.False(t, ok)
	assert.NoError(t, err)
	_, ok, err = r.AuthenticateToken(t.Context(), "broken")
	assert.False(t, ok)
	assert.ErrorContains(t, err, "TokenReview: no")

	calls = 0
	res, ok, err = r.AuthenticateToken(t.Context(), "flaky")
	require.NoError(t, err, "a transient failure is retried")
	assert.True(t, ok)
	assert.Equal(t, "flaky", res.User.GetName())
	assert.Equal(t, 2, calls)
}

func TestAccessReviewer(t *testing.T) {
	client := fake.NewClientset()
	var seen []authorizationv1.SubjectAccessReviewSpec
	client.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		seen = append(seen, sar.Spec)
		switch sar.Spec.User {
		case "reader":
			sar.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "bound"}
		case "broken":
			return true, nil, errors.New("refused")
		case "odd":
			sar.Status = authorizationv1.SubjectAccessReviewStatus{Reason: "no", EvaluationError: "bad rule"}
		default:
			sar.Status = authorizationv1.SubjectAccessReviewStatus{Reason: "no RBAC policy matched"}
		}
		return true, sar, nil
	})
	r := &accessReviewer{client: client.AuthorizationV1().SubjectAccessReviews(), cache: utilcache.NewLRUExpireCache(8), allowTTL: time.Hour, denyTTL: time.Hour}
	ask := func(name, path string) (authorizer.Decision, string, error) {
		return r.Authorize(context.Background(), authorizer.AttributesRecord{
			User: &user.DefaultInfo{Name: name, UID: "u", Groups: []string{"g"}, Extra: map[string][]string{"k": {"v"}}}, Verb: "get", Path: path})
	}

	d, why, err := ask("reader", "/metrics")
	require.NoError(t, err)
	assert.Equal(t, authorizer.DecisionAllow, d)
	assert.Equal(t, "bound", why)
	require.Len(t, seen, 1)
	assert.Equal(t, authorizationv1.SubjectAccessReviewSpec{User: "reader", UID: "u", Groups: []string{"g"},
		Extra:                 map[string]authorizationv1.ExtraValue{"k": {"v"}},
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}}, seen[0])

	d, _, _ = ask("reader", "/metrics")
	assert.Equal(t, authorizer.DecisionAllow, d)
	assert.Len(t, seen, 1, "the answer is cached")
	d, _, _ = ask("reader", "/modules")
	assert.Equal(t, authorizer.DecisionAllow, d)
	assert.Len(t, seen, 2, "per path")

	d, why, err = ask("nobody", "/metrics")
	require.NoError(t, err)
	assert.Equal(t, authorizer.DecisionNoOpinion, d)
	assert.Equal(t, "no RBAC policy matched", why)
	_, why, _ = ask("odd", "/metrics")
	assert.Contains(t, why, "evaluation error: bad rule")

	n := len(seen)
	_, _, err = ask("broken", "/metrics")
	assert.ErrorContains(t, err, "SubjectAccessReview: refused")
	_, _, err = ask("broken", "/metrics")
	assert.Error(t, err)
	assert.Len(t, seen, n+2, "failures are not cached")
}
