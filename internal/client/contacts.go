package client

import (
	"fmt"
	"strings"

	"github.com/umbra-im/umbra/internal/envelope"
	"github.com/umbra-im/umbra/internal/identity"
)

// AddContact adds (or renames, or accepts) a contact by account ID. A
// mistyped ID is refused with the checksum error.
func (e *Engine) AddContact(id, name string) (*Contact, error) {
	aid, err := identity.ParseAccountID(id)
	if err != nil {
		return nil, err
	}
	if aid.Equal(e.acct.ID()) {
		return nil, fmt.Errorf("that is your own account ID")
	}
	e.mu.Lock()
	c, err := e.d.contact(aid.String())
	if err != nil {
		e.mu.Unlock()
		return nil, err
	}
	wasRequest := c != nil && c.State == ContactRequest
	if c == nil {
		c = &Contact{ID: aid.String(), AddedAt: e.now()}
	}
	if name = strings.TrimSpace(name); name != "" {
		c.Name = name
	}
	c.State = ContactAccepted
	if err := e.d.putJSON(contactKey(c.ID), c); err != nil {
		e.mu.Unlock()
		return nil, err
	}
	var pending []string
	if wasRequest {
		pending = e.incomingIDsLocked(c.ID)
	}
	e.mu.Unlock()
	e.bus.publish(Event{Type: EventContact, Contact: c})
	// Accepting a request acknowledges what it sent (queued if offline).
	e.oweReceipts(c.ID, envelope.KindReceiptDelivered, pending)
	return c, nil
}

// RenameContact sets a contact's display name.
func (e *Engine) RenameContact(id, name string) (*Contact, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.d.contact(id)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("no contact %s", id)
	}
	c.Name = strings.TrimSpace(name)
	if err := e.d.putJSON(contactKey(c.ID), c); err != nil {
		return nil, err
	}
	e.bus.publish(Event{Type: EventContact, Contact: c})
	return c, nil
}

// RemoveContact forgets a contact (their messages stay).
func (e *Engine) RemoveContact(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.kv.Delete(contactKey(id)); err != nil {
		return err
	}
	e.bus.publish(Event{Type: EventContact, Contact: &Contact{ID: id, State: "removed"}})
	return nil
}

// Contacts lists accepted contacts.
func (e *Engine) Contacts() ([]Contact, error) { return e.contactsIn(ContactAccepted) }

// Requests lists message requests: strangers who wrote first.
func (e *Engine) Requests() ([]Contact, error) { return e.contactsIn(ContactRequest) }

func (e *Engine) contactsIn(state string) ([]Contact, error) {
	all, err := e.d.contacts()
	if err != nil {
		return nil, err
	}
	var out []Contact
	for _, c := range all {
		if c.State == state {
			out = append(out, c)
		}
	}
	return out, nil
}

// Accept turns a message request into a contact; their messages get
// delivery receipts from now on.
func (e *Engine) Accept(id string) (*Contact, error) { return e.AddContact(id, "") }

// Block drops a stranger's (or contact's) messages from now on.
func (e *Engine) Block(id string) error {
	aid, err := identity.ParseAccountID(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.d.contact(aid.String())
	if err != nil {
		return err
	}
	if c == nil {
		c = &Contact{ID: aid.String(), AddedAt: e.now()}
	}
	if c.State != ContactBlocked {
		c.UnblockTo = c.State
	}
	c.State = ContactBlocked
	if err := e.d.putJSON(contactKey(c.ID), c); err != nil {
		return err
	}
	e.bus.publish(Event{Type: EventContact, Contact: c})
	return nil
}
