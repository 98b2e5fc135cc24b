package guest

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/wre-dev/wre/guest-sdk/abi"
)

// StatusError rebuilds the API error that s describes.
func StatusError(s abi.Status) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    s.Code,
		Reason:  metav1.StatusReason(s.Reason),
		Message: s.Message,
		Details: &metav1.StatusDetails{Group: s.Group, Kind: s.Kind, Name: s.Name},
	}}
}

// Call performs one host call and returns its response, or the API error it
// carries.
func Call(c Caller, op abi.Op, req *abi.Request) (*abi.Response, error) {
	raw, err := c.Call(op, req.Marshal())
	if err != nil {
		return nil, err
	}
	resp := new(abi.Response)
	if err := resp.Unmarshal(raw); err != nil {
		return nil, err
	}
	if !resp.OK() {
		return resp, StatusError(resp.Status)
	}
	return resp, nil
}
