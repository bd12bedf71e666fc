package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"unicode"

	"github.com/umbra-im/umbra/internal/api"
	"github.com/umbra-im/umbra/internal/client"
	"github.com/umbra-im/umbra/internal/identity"
)

// maxCandidates bounds the names an "unknown name" error lists.
const maxCandidates = 20

// resolveAccount turns what a user typed for an account into its account
// ID. It accepts, in this order:
//
//   - an account ID (umbra1..., in either case);
//   - an account ID as the web UI shows it for reading aloud, in groups of
//     4 characters ("umbra1 abcd efgh ..."), or with any other whitespace
//     or hyphens inside it;
//   - the name of a contact or message request, ignoring case and the
//     spaces around it. A name more than one of them has is refused, as is
//     an unknown name; the error lists the candidates.
//
// Text that starts like an account ID but is not a valid one (a typo) is
// refused with the account ID's own error, unless a contact is named so.
// The lists come from the API only when the text is not an account ID.
func resolveAccount(ctx context.Context, c *api.Client, arg string) (string, error) {
	if id, ok := parseAccountText(arg); ok {
		return id, nil
	}
	var contacts, requests []client.Contact
	if err := c.Do(ctx, http.MethodGet, "/api/v1/contacts", nil, &contacts); err != nil {
		return "", err
	}
	if err := c.Do(ctx, http.MethodGet, "/api/v1/requests", nil, &requests); err != nil {
		return "", err
	}
	return resolveAmong(arg, append(contacts, requests...))
}

// parseAccountText parses s as an account ID, with or without the
// whitespace and hyphens of a grouped form; it answers the canonical ID.
func parseAccountText(s string) (string, bool) {
	id, err := identity.ParseAccountID(compactID(s))
	if err != nil {
		return "", false
	}
	return id.String(), true
}

// compactID drops whitespace and hyphens (neither occurs in an account ID).
func compactID(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '-' {
			return -1
		}
		return r
	}, s)
}

// resolveAmong resolves arg (already known not to be a valid account ID)
// as a name among known.
func resolveAmong(arg string, known []client.Contact) (string, error) {
	want := strings.TrimSpace(arg)
	if want == "" {
		return "", fmt.Errorf("no account given: want an account ID or a contact's name")
	}
	var matches []client.Contact
	for _, k := range known {
		if k.Name != "" && strings.EqualFold(strings.TrimSpace(k.Name), want) {
			matches = append(matches, k)
		}
	}
	switch {
	case len(matches) == 1:
		return matches[0].ID, nil
	case len(matches) > 1:
		return "", fmt.Errorf("%d contacts are named %q; give the account ID of one:\n%s", len(matches), want, listCandidates(matches))
	}
	// A mistyped account ID: say what is wrong with it.
	if c := strings.ToLower(compactID(want)); strings.HasPrefix(c, identity.AccountIDPrefix) {
		_, err := identity.ParseAccountID(c)
		return "", err
	}
	var named []client.Contact
	for _, k := range known {
		if k.Name != "" {
			named = append(named, k)
		}
	}
	if len(named) == 0 {
		return "", fmt.Errorf("%q is neither an account ID nor a contact's name (no contact has a name yet: umbra contacts rename ID NAME)", want)
	}
	return "", fmt.Errorf("%q is neither an account ID nor a contact's name; the names are:\n%s", want, listCandidates(named))
}

// listCandidates lists contacts one a line, "  NAME  ID", sorted by name,
// at most maxCandidates of them.
func listCandidates(cs []client.Contact) string {
	cs = append([]client.Contact(nil), cs...)
	sort.Slice(cs, func(i, j int) bool {
		a, b := strings.ToLower(cs[i].Name), strings.ToLower(cs[j].Name)
		if a != b {
			return a < b
		}
		return cs[i].ID < cs[j].ID
	})
	var b strings.Builder
	for i, c := range cs {
		if i == maxCandidates {
			fmt.Fprintf(&b, "  ... and %d more (umbra contacts list)\n", len(cs)-i)
			break
		}
		fmt.Fprintf(&b, "  %s  %s\n", c.Name, c.ID)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
