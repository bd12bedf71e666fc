package mailbox

import (
	"crypto/sha256"
	"encoding/binary"
)

// bucketTag separates request-bucket IDs from every other hash.
const bucketTag = "Umbra_Bucket_v1"

// BucketID is the mailbox ID of shared request bucket b of epoch e:
//
//	SHA-256("Umbra_Bucket_v1" ‖ be64(e) ‖ be32(b))
//
// a plain hash with no key behind it. Bucket mailboxes hold first contacts
// in the drop namespace (wire.DropNamespace), which anyone may read and
// nobody may delete; nobody can authenticate as a bucket.
func BucketID(epoch uint64, bucket uint32) ID {
	b := make([]byte, 0, len(bucketTag)+12)
	b = append(b, bucketTag...)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = binary.BigEndian.AppendUint32(b, bucket)
	return ID(sha256.Sum256(b))
}
