package store

import "testing"

// TestApartNamespace: Get leaves out the apart namespace; GetNamespace
// reads one namespace only, pages with a cursor and reports More.
func TestApartNamespace(t *testing.T) {
	clk := newClock()
	s, _ := openTest(t, clk, func(c *Config) { c.ApartNamespace = 3 })
	mb := mbox(1)
	exp := clk.Ms() + 60_000
	var drops []Message
	plain := mkMsg(mb, "plain", exp)
	plain.Namespace = 0
	mustPut(t, s, plain)
	for i := 0; i < 5; i++ {
		m := mkMsg(mb, string(rune('a'+i))+" drop", exp)
		m.Namespace = 3
		drops = append(drops, m)
		mustPut(t, s, m)
	}
	got, more, err := s.Get(mb, nil, 0, 0)
	if err != nil || more {
		t.Fatalf("Get: %v, more=%v", err, more)
	}
	sameHashes(t, "Get", got, []Message{plain})

	page, more, err := s.GetNamespace(mb, 3, nil, 2, 0)
	if err != nil || !more {
		t.Fatalf("first page: %v, more=%v", err, more)
	}
	sameHashes(t, "first page", page, drops[:2])
	after := page[1].Hash
	page, more, err = s.GetNamespace(mb, 3, &after, 10, 0)
	if err != nil || more {
		t.Fatalf("second page: %v, more=%v", err, more)
	}
	sameHashes(t, "second page", page, drops[2:])
	// A cursor naming a message of another namespace starts over.
	other := plain.Hash
	page, _, err = s.GetNamespace(mb, 3, &other, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameHashes(t, "foreign cursor", page, drops)
	page, _, err = s.GetNamespace(mb, 0, nil, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	sameHashes(t, "namespace 0", page, []Message{plain})
}
