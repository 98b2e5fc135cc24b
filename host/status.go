package host

import (
	"context"
	"errors"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

// statusOf maps err onto the status a guest receives: API errors keep their
// code, reason and details; a passed deadline is 504 Timeout; anything else is
// 500 InternalError.
func statusOf(err error) abi.Status {
	var st metav1.Status
	var apiStatus apierrors.APIStatus
	switch {
	case errors.As(err, &apiStatus):
		st = apiStatus.Status()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		st = metav1.Status{Code: http.StatusGatewayTimeout, Reason: metav1.StatusReasonTimeout, Message: err.Error()}
	default:
		st = metav1.Status{Code: http.StatusInternalServerError, Reason: metav1.StatusReasonInternalError, Message: err.Error()}
	}
	s := abi.Status{Code: st.Code, Reason: string(st.Reason), Message: st.Message}
	if st.Code == 0 {
		s.Code = http.StatusInternalServerError
	}
	if d := st.Details; d != nil {
		s.Group, s.Kind, s.Name = d.Group, d.Kind, d.Name
	}
	return s
}

// badRequest is the status for a request the guest got wrong.
func badRequest(msg string) abi.Status {
	return abi.Status{Code: http.StatusBadRequest, Reason: string(metav1.StatusReasonBadRequest), Message: msg}
}
