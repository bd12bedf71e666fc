package member

// SetMaxNodes lowers the table's bound for tests.
func (t *Table) SetMaxNodes(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.maxNodes = n
}
