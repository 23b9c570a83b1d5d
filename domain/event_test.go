package domain

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type thingHappened struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func (thingHappened) EventType() string { return "ThingHappened.v2" }

type unversioned struct{}

func (unversioned) EventType() string { return "Unversioned" }

func TestCodecRoundTripAndUpcast(t *testing.T) {
	c := NewCodec()
	Register[thingHappened](c)
	// v1 had no count: it was always one thing.
	c.RegisterUpcaster("ThingHappened.v1", func(data json.RawMessage) (string, json.RawMessage, error) {
		var v1 struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(data, &v1); err != nil {
			return "", nil, err
		}
		out, err := json.Marshal(thingHappened{Name: v1.Name, Count: 1})
		return "ThingHappened.v2", out, err
	})
	typ, data, err := c.Encode(thingHappened{Name: "x", Count: 3})
	if err != nil || typ != "ThingHappened.v2" {
		t.Fatalf("encode: %s %v", typ, err)
	}
	ev, err := c.Decode(typ, data)
	if err != nil || ev != (thingHappened{Name: "x", Count: 3}) {
		t.Fatalf("round trip: %v %v", ev, err)
	}
	ev, err = c.Decode("ThingHappened.v1", json.RawMessage(`{"name":"old"}`))
	if err != nil || ev != (thingHappened{Name: "old", Count: 1}) {
		t.Fatalf("upcast: %v %v", ev, err)
	}
	if !c.Knows("ThingHappened.v1") || c.Knows("ThingHappened.v3") {
		t.Error("Knows")
	}
	if SchemaVersion("ThingHappened.v12") != 12 || SchemaVersion("Thing") != 0 || SchemaVersion("Thing.vx") != 0 {
		t.Error("SchemaVersion")
	}
}

func TestCodecRefusals(t *testing.T) {
	c := NewCodec()
	if _, _, err := c.Encode(thingHappened{}); !errors.Is(err, ErrUnknownEventType) {
		t.Errorf("encode of an unregistered type: %v", err)
	}
	// A cycle of upcasters fails instead of looping.
	c.RegisterUpcaster("A.v1", func(d json.RawMessage) (string, json.RawMessage, error) { return "B.v1", d, nil })
	c.RegisterUpcaster("B.v1", func(d json.RawMessage) (string, json.RawMessage, error) { return "A.v1", d, nil })
	if _, err := c.Decode("A.v1", json.RawMessage(`{}`)); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: %v", err)
	}
	for name, f := range map[string]func(){
		"unversioned": func() { Register[unversioned](c) },
		"twice":       func() { Register[thingHappened](c); Register[thingHappened](c) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
