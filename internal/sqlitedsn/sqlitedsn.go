// Package sqlitedsn builds the data source names of modernc.org/sqlite
// databases, one way for every store (messages, shares, the keystore).
package sqlitedsn

import "net/url"

// DSN is the DSN of the database file at path with the pragmas (each as
// "name(value)") and any other query parameters in extra.
func DSN(path string, extra url.Values, pragmas ...string) string {
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	// url.Values.Encode escapes the parentheses, which the driver decodes again.
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}
