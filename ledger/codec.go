package ledger

import (
	"github.com/ansinh/ansinh/domain"
	"github.com/ansinh/ansinh/domain/disbursement"
	"github.com/ansinh/ansinh/domain/entitlement"
	"github.com/ansinh/ansinh/domain/registry"
)

// eventPackages register the events of every aggregate the ledger writes.
// A new aggregate package adds its RegisterEvents here.
var eventPackages = []func(*domain.Codec){
	registry.RegisterEvents,
	entitlement.RegisterEvents,
	disbursement.RegisterEvents,
}

// NewCodec returns a codec that knows every event type the ledger writes,
// and the upcasters of their older versions.
func NewCodec() *domain.Codec {
	c := domain.NewCodec()
	for _, register := range eventPackages {
		register(c)
	}
	return c
}
