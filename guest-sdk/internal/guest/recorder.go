package guest

import (
	"fmt"

	"github.com/wre-dev/wre/guest-sdk/abi"
	"github.com/wre-dev/wre/guest-sdk/client"
)

// Recorder records Kubernetes Events through the host.
type Recorder struct {
	client *Client
	log    func(err error, msg string, kv ...any)
}

// NewRecorder returns a recorder that names objects with c's scheme and
// reports failures to onError (recording an event is best effort).
func NewRecorder(c *Client, onError func(err error, msg string, kv ...any)) *Recorder {
	return &Recorder{client: c, log: onError}
}

// Eventf records an event of type eventtype ("Normal" or "Warning") about obj.
func (r *Recorder) Eventf(obj client.Object, eventtype, reason, messageFmt string, args ...any) {
	if err := r.record(obj, eventtype, reason, fmt.Sprintf(messageFmt, args...)); err != nil {
		r.log(err, "record event", "reason", reason, "object", obj.GetName())
	}
}

func (r *Recorder) record(obj client.Object, eventtype, reason, note string) error {
	gvk, err := r.client.GVKFor(obj)
	if err != nil {
		return err
	}
	req := r.client.request(gvk, obj.GetNamespace(), obj.GetName())
	req.EventType, req.EventReason, req.EventMessage = eventtype, reason, note
	_, err = Call(r.client.caller, abi.OpEvent, &req)
	return err
}
