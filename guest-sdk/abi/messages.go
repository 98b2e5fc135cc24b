package abi

import "fmt"

// ReconcileRequest is what the host passes to wre_reconcile.
type ReconcileRequest struct {
	Namespace   string // tag 1; empty for cluster-scoped objects
	Name        string // tag 2
	ReconcileID string // tag 3; unique per reconcile, for log correlation
}

// Tags of ReconcileRequest.
const (
	TagReconcileNamespace uint16 = 1
	TagReconcileName      uint16 = 2
	TagReconcileID        uint16 = 3
)

// Marshal encodes m.
func (m *ReconcileRequest) Marshal() []byte {
	b := make([]byte, 0, 3*FieldHeaderSize+len(m.Namespace)+len(m.Name)+len(m.ReconcileID))
	b = appendString(b, TagReconcileNamespace, m.Namespace)
	b = appendString(b, TagReconcileName, m.Name)
	return appendString(b, TagReconcileID, m.ReconcileID)
}

// Unmarshal decodes b into m, replacing its contents.
func (m *ReconcileRequest) Unmarshal(b []byte) error {
	*m = ReconcileRequest{}
	return walk(b, func(tag uint16, val []byte) error {
		switch tag {
		case TagReconcileNamespace:
			m.Namespace = string(val)
		case TagReconcileName:
			m.Name = string(val)
		case TagReconcileID:
			m.ReconcileID = string(val)
		}
		return nil
	})
}

// ReconcileResponse is what wre_reconcile returns.
type ReconcileResponse struct {
	// RequeueAfterNanos asks for another reconcile after this many nanoseconds
	// when positive (tag 1, i64).
	RequeueAfterNanos int64
	// Failed reports that the reconcile failed; it is true exactly when tag 2 is
	// present, even with an empty message.
	Failed bool
	// Error is the failure message (tag 2).
	Error string
	// Terminal marks the failure as not worth retrying (tag 3, bool). A terminal
	// response without tag 2 still counts as failed.
	Terminal bool
	// Panicked reports that the guest recovered a panic (tag 4, bool): the host
	// treats the reconcile like a trap with reason "panic" and discards the
	// instance, whose state the panic may have left inconsistent. Error holds
	// the panic value and stack. It implies Failed; Terminal is then ignored.
	Panicked bool
}

// Tags of ReconcileResponse.
const (
	TagRequeueAfter uint16 = 1
	TagError        uint16 = 2
	TagTerminal     uint16 = 3
	TagPanicked     uint16 = 4
)

// Marshal encodes m.
func (m *ReconcileResponse) Marshal() []byte {
	var b []byte
	b = appendUint64(b, TagRequeueAfter, uint64(m.RequeueAfterNanos))
	if m.Failed || m.Terminal || m.Panicked || m.Error != "" {
		b = appendBytes(b, TagError, []byte(m.Error))
	}
	b = appendBool(b, TagTerminal, m.Terminal)
	return appendBool(b, TagPanicked, m.Panicked)
}

// Unmarshal decodes b into m, replacing its contents.
func (m *ReconcileResponse) Unmarshal(b []byte) error {
	*m = ReconcileResponse{}
	err := walk(b, func(tag uint16, val []byte) (err error) {
		switch tag {
		case TagRequeueAfter:
			m.RequeueAfterNanos, err = decodeInt64(tag, val)
		case TagError:
			m.Failed, m.Error = true, string(val)
		case TagTerminal:
			m.Terminal, err = decodeBool(tag, val)
		case TagPanicked:
			m.Panicked, err = decodeBool(tag, val)
		}
		return err
	})
	if m.Terminal || m.Panicked {
		m.Failed = true
	}
	return err
}

// Request is the message a guest passes to wre.call. Which fields an operation
// reads is listed in docs/abi.md; the others are ignored.
type Request struct {
	Group    string // tag 1; "" for the core group
	Version  string // tag 2
	Resource string // tag 3; plural lower-case resource, e.g. "deployments"
	Kind     string // tag 4

	Namespace string // tag 5
	Name      string // tag 6

	LabelSelector string // tag 7
	FieldSelector string // tag 8
	Limit         int64  // tag 9
	Continue      string // tag 10

	ContentType string // tag 11; of Body
	Body        []byte // tag 12; an object or a patch
	PatchType   string // tag 13; one of the Patch* constants
	// FieldManager, when set, must equal the module's name (tag 14).
	FieldManager string
	Force        bool // tag 15; server-side apply: take ownership of conflicting fields
	DryRun       bool // tag 16

	PreconditionUID             string // tag 17
	PreconditionResourceVersion string // tag 18
	PropagationPolicy           string // tag 19; Orphan, Background or Foreground

	// Live asks get and list to read from the API server instead of the cache
	// (tag 20).
	Live bool
	// Accept is the content type wanted for objects in the response (tag 21);
	// empty means protobuf for built-in types and JSON for the others.
	Accept string

	EventType    string // tag 22; Normal or Warning
	EventReason  string // tag 23
	EventMessage string // tag 24

	// Projection selects, in ABI v2, the declared projection (1-based, in
	// declaration order) in which objects travel (tag 25); 0 asks for the
	// full object as JSON.
	Projection int64
	// Fields are the fields of a declare call (ABI v2), each "path:kind"
	// (tag 26, repeated).
	Fields []string
}

// Tags of Request.
const (
	TagGroup                       uint16 = 1
	TagVersion                     uint16 = 2
	TagResource                    uint16 = 3
	TagKind                        uint16 = 4
	TagNamespace                   uint16 = 5
	TagName                        uint16 = 6
	TagLabelSelector               uint16 = 7
	TagFieldSelector               uint16 = 8
	TagLimit                       uint16 = 9
	TagContinue                    uint16 = 10
	TagContentType                 uint16 = 11
	TagBody                        uint16 = 12
	TagPatchType                   uint16 = 13
	TagFieldManager                uint16 = 14
	TagForce                       uint16 = 15
	TagDryRun                      uint16 = 16
	TagPreconditionUID             uint16 = 17
	TagPreconditionResourceVersion uint16 = 18
	TagPropagationPolicy           uint16 = 19
	TagLive                        uint16 = 20
	TagAccept                      uint16 = 21
	TagEventType                   uint16 = 22
	TagEventReason                 uint16 = 23
	TagEventMessage                uint16 = 24
	TagProjection                  uint16 = 25
	TagField                       uint16 = 26
)

// Marshal encodes m.
func (m *Request) Marshal() []byte { return m.AppendTo(make([]byte, 0, 128+len(m.Body))) }

// AppendTo appends the encoding of m to b: a guest that reuses b encodes
// without allocating.
func (m *Request) AppendTo(b []byte) []byte {
	for _, f := range [...]struct {
		tag uint16
		s   string
	}{
		{TagGroup, m.Group}, {TagVersion, m.Version}, {TagResource, m.Resource}, {TagKind, m.Kind},
		{TagNamespace, m.Namespace}, {TagName, m.Name},
		{TagLabelSelector, m.LabelSelector}, {TagFieldSelector, m.FieldSelector}, {TagContinue, m.Continue},
		{TagContentType, m.ContentType}, {TagPatchType, m.PatchType}, {TagFieldManager, m.FieldManager},
		{TagPreconditionUID, m.PreconditionUID}, {TagPreconditionResourceVersion, m.PreconditionResourceVersion},
		{TagPropagationPolicy, m.PropagationPolicy}, {TagAccept, m.Accept},
		{TagEventType, m.EventType}, {TagEventReason, m.EventReason}, {TagEventMessage, m.EventMessage},
	} {
		b = appendString(b, f.tag, f.s)
	}
	b = appendUint64(b, TagLimit, uint64(m.Limit))
	b = appendBool(b, TagForce, m.Force)
	b = appendBool(b, TagDryRun, m.DryRun)
	b = appendBool(b, TagLive, m.Live)
	b = appendUint64(b, TagProjection, uint64(m.Projection))
	for _, f := range m.Fields {
		b = appendBytes(b, TagField, []byte(f))
	}
	if m.Body != nil {
		b = appendBytes(b, TagBody, m.Body)
	}
	return b
}

// Unmarshal decodes b into m, replacing its contents.
func (m *Request) Unmarshal(b []byte) error {
	*m = Request{}
	err := walk(b, func(tag uint16, val []byte) (err error) {
		if p := m.stringField(tag); p != nil {
			*p = string(val)
			return nil
		}
		if p := m.boolField(tag); p != nil {
			*p, err = decodeBool(tag, val)
			return err
		}
		switch tag {
		case TagLimit:
			m.Limit, err = decodeInt64(tag, val)
		case TagProjection:
			m.Projection, err = decodeInt64(tag, val)
		case TagField:
			m.Fields = append(m.Fields, string(val))
		case TagBody:
			m.Body = cloneBytes(val)
		}
		return err
	})
	if err == nil && m.Limit < 0 {
		err = fmt.Errorf("%w: negative limit %d", ErrMalformed, m.Limit)
	}
	if err == nil && m.Projection < 0 {
		err = fmt.Errorf("%w: negative projection %d", ErrMalformed, m.Projection)
	}
	return err
}

// stringField returns the string field of tag, or nil. A switch rather than a
// map: Unmarshal runs on every host call in the guest and must not allocate
// for its bookkeeping.
func (m *Request) stringField(tag uint16) *string {
	switch tag {
	case TagGroup:
		return &m.Group
	case TagVersion:
		return &m.Version
	case TagResource:
		return &m.Resource
	case TagKind:
		return &m.Kind
	case TagNamespace:
		return &m.Namespace
	case TagName:
		return &m.Name
	case TagLabelSelector:
		return &m.LabelSelector
	case TagFieldSelector:
		return &m.FieldSelector
	case TagContinue:
		return &m.Continue
	case TagContentType:
		return &m.ContentType
	case TagPatchType:
		return &m.PatchType
	case TagFieldManager:
		return &m.FieldManager
	case TagPreconditionUID:
		return &m.PreconditionUID
	case TagPreconditionResourceVersion:
		return &m.PreconditionResourceVersion
	case TagPropagationPolicy:
		return &m.PropagationPolicy
	case TagAccept:
		return &m.Accept
	case TagEventType:
		return &m.EventType
	case TagEventReason:
		return &m.EventReason
	case TagEventMessage:
		return &m.EventMessage
	}
	return nil
}

func (m *Request) boolField(tag uint16) *bool {
	switch tag {
	case TagForce:
		return &m.Force
	case TagDryRun:
		return &m.DryRun
	case TagLive:
		return &m.Live
	}
	return nil
}

// Status is the outcome of a host call, shaped like metav1.Status.
type Status struct {
	Code    int32  // tag 1; an HTTP status code, 200 for success
	Reason  string // tag 2; a metav1.StatusReason such as "NotFound"
	Message string // tag 3
	Group   string // tag 4; details: the group of the object concerned
	Kind    string // tag 5; details: the kind (or resource) of the object
	Name    string // tag 6; details: the name of the object
}

// OK reports whether the status code is 2xx.
func (s Status) OK() bool { return s.Code >= 200 && s.Code < 300 }

// Response is the message wre.call returns.
type Response struct {
	Status
	ContentType     string   // tag 7; of Body and of every item
	Body            []byte   // tag 8; the object (get, create, update, patch), or the config
	Items           [][]byte // tag 9, repeated; the list items in order
	Continue        string   // tag 10; list: token for the next page
	ResourceVersion string   // tag 11; list: resource version of the list
}

// Tags of Response.
const (
	TagCode            uint16 = 1
	TagReason          uint16 = 2
	TagMessage         uint16 = 3
	TagDetailsGroup    uint16 = 4
	TagDetailsKind     uint16 = 5
	TagDetailsName     uint16 = 6
	TagRespContentType uint16 = 7
	TagRespBody        uint16 = 8
	TagItem            uint16 = 9
	TagRespContinue    uint16 = 10
	TagResourceVersion uint16 = 11
)

// Size returns the length of m.Marshal() without encoding it.
func (m *Response) Size() int {
	n := 0
	for _, s := range [...]string{m.Reason, m.Message, m.Group, m.Kind, m.Name, m.ContentType, m.Continue, m.ResourceVersion} {
		if s != "" {
			n += FieldHeaderSize + len(s)
		}
	}
	n += FieldHeaderSize + 8 // code
	if m.Body != nil {
		n += FieldHeaderSize + len(m.Body)
	}
	for _, it := range m.Items {
		n += FieldHeaderSize + len(it)
	}
	return n
}

// Marshal encodes m. The code is always written, even when zero.
func (m *Response) Marshal() []byte {
	return m.AppendTo(make([]byte, 0, m.Size()))
}

// AppendTo appends the encoding of m to b, which lets the host encode straight
// into a buffer of m.Size() bytes.
func (m *Response) AppendTo(b []byte) []byte {
	b = appendHeader(b, TagCode, 8)
	b = append(b, byte(m.Code), byte(m.Code>>8), byte(m.Code>>16), byte(m.Code>>24), 0, 0, 0, 0)
	b = appendString(b, TagReason, m.Reason)
	b = appendString(b, TagMessage, m.Message)
	b = appendString(b, TagDetailsGroup, m.Group)
	b = appendString(b, TagDetailsKind, m.Kind)
	b = appendString(b, TagDetailsName, m.Name)
	b = appendString(b, TagRespContentType, m.ContentType)
	if m.Body != nil {
		b = appendBytes(b, TagRespBody, m.Body)
	}
	for _, it := range m.Items {
		b = appendBytes(b, TagItem, it)
	}
	b = appendString(b, TagRespContinue, m.Continue)
	return appendString(b, TagResourceVersion, m.ResourceVersion)
}

func (m *Response) stringField(tag uint16) *string {
	switch tag {
	case TagReason:
		return &m.Reason
	case TagMessage:
		return &m.Message
	case TagDetailsGroup:
		return &m.Group
	case TagDetailsKind:
		return &m.Kind
	case TagDetailsName:
		return &m.Name
	case TagRespContentType:
		return &m.ContentType
	case TagRespContinue:
		return &m.Continue
	case TagResourceVersion:
		return &m.ResourceVersion
	}
	return nil
}

// Unmarshal decodes b into m, replacing its contents. A response without a code
// is malformed.
func (m *Response) Unmarshal(b []byte) error {
	*m = Response{}
	hasCode := false
	err := walk(b, func(tag uint16, val []byte) (err error) {
		if p := m.stringField(tag); p != nil {
			*p = string(val)
			return nil
		}
		switch tag {
		case TagCode:
			m.Code, err = decodeInt32(tag, val)
			hasCode = true
		case TagRespBody:
			m.Body = cloneBytes(val)
		case TagItem:
			m.Items = append(m.Items, cloneBytes(val))
		}
		return err
	})
	if err == nil && !hasCode {
		err = fmt.Errorf("%w: response without status code", ErrMalformed)
	}
	return err
}
