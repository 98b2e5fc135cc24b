package leader

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func lease(holder string, durationSeconds int32, renewed time.Time, rv string) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "l", Namespace: "ns", ResourceVersion: rv},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(holder),
			LeaseDurationSeconds: ptr.To(durationSeconds),
			RenewTime:            &metav1.MicroTime{Time: renewed},
		},
	}
}

func TestExpiry(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	// The holder's clock is an hour off: only the local clock counts.
	skewed := t0.Add(-time.Hour)
	type step struct {
		at       time.Duration // since t0, on the local clock
		observe  *coordinationv1.Lease
		released bool
		// armed and expires are what next reports afterwards.
		armed   bool
		expires time.Duration
		// take, when set, is the time take is called at and whether it
		// returns the lease.
		take  time.Duration
		taken bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"held by another expires its duration after it was seen", []step{
			{at: 0, observe: lease("a", 4, skewed, "1"), armed: true, expires: 4 * time.Second},
			{take: 3999 * time.Millisecond, armed: true, expires: 4 * time.Second},
			{take: 4 * time.Second, taken: true},
		}},
		{"a renewal restarts the clock", []step{
			{at: 0, observe: lease("a", 4, skewed, "1"), armed: true, expires: 4 * time.Second},
			{at: 3 * time.Second, observe: lease("a", 4, skewed.Add(time.Second), "2"), armed: true, expires: 7 * time.Second},
			{take: 5 * time.Second, armed: true, expires: 7 * time.Second},
			{take: 7 * time.Second, taken: true},
		}},
		{"a relist or metadata change is no renewal", []step{
			{at: 0, observe: lease("a", 4, skewed, "1"), armed: true, expires: 4 * time.Second},
			{at: 2 * time.Second, observe: lease("a", 4, skewed, "1"), armed: true, expires: 4 * time.Second},
			{at: 3 * time.Second, observe: lease("a", 4, skewed, "7"), armed: true, expires: 4 * time.Second},
			{take: 4 * time.Second, taken: true},
		}},
		{"a new holder restarts the clock", []step{
			{at: 0, observe: lease("a", 4, skewed, "1"), armed: true, expires: 4 * time.Second},
			{at: time.Second, observe: lease("c", 10, skewed, "2"), armed: true, expires: 11 * time.Second},
		}},
		{"held by this identity is never taken", []step{
			{at: 0, observe: lease("a", 4, skewed, "1"), armed: true, expires: 4 * time.Second},
			{at: time.Second, observe: lease("me", 4, skewed, "2")},
			{take: time.Hour},
		}},
		{"released", []step{
			{at: 0, observe: lease("a", 4, skewed, "1"), armed: true, expires: 4 * time.Second},
			{at: time.Second, observe: lease("", 1, skewed, "2"), released: true},
			{take: time.Hour},
		}},
		{"no duration in the record: this process's", []step{
			{at: 0, observe: lease("a", 0, skewed, "1"), armed: true, expires: 15 * time.Second},
		}},
		{"one takeover per observed record", []step{
			{at: 0, observe: lease("a", 4, skewed, "1"), armed: true, expires: 4 * time.Second},
			{take: 5 * time.Second, taken: true},
			{take: 6 * time.Second},
			// After a conflict the watch shows what changed: a new clock.
			{at: 6 * time.Second, observe: lease("a", 4, skewed, "3"), armed: true, expires: 10 * time.Second},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := expiry{identity: "me", fallback: 15 * time.Second}
			for i, s := range tt.steps {
				if s.observe != nil {
					assert.Equal(t, s.released, x.observe(s.observe, t0.Add(s.at)), "step %d: released", i)
				} else {
					l := x.take(t0.Add(s.take))
					assert.Equal(t, s.taken, l != nil, "step %d: taken", i)
				}
				deadline, armed := x.next()
				assert.Equal(t, s.armed, armed, "step %d: armed", i)
				if s.armed {
					assert.Equal(t, t0.Add(s.expires), deadline, "step %d: deadline", i)
				}
			}
		})
	}
}

func TestTakeoverSpec(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 123456000, time.UTC)
	old := lease("a", 4, now.Add(-time.Minute), "1").Spec
	old.LeaseTransitions = ptr.To[int32](6)
	old.AcquireTime = &metav1.MicroTime{Time: now.Add(-time.Hour)}
	got := takeoverSpec(old, "me", 15*time.Second, now)
	assert.Equal(t, coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To("me"),
		LeaseDurationSeconds: ptr.To[int32](15),
		AcquireTime:          &metav1.MicroTime{Time: now},
		RenewTime:            &metav1.MicroTime{Time: now},
		LeaseTransitions:     ptr.To[int32](7),
	}, got)
}
