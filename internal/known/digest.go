package known

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"maps"
	"slices"

	"github.com/jitprov/jitprov/events"
)

// digestDomain starts every digest's input. Changing the canonical form
// below means a new version here: records with the old digest then simply
// stop being fresh, and each person takes the synchronous path once.
const digestDomain = "jitprov/known/claims/v1"

// Digest is a canonical SHA-256 (hex) of the mapped claims that decide a
// provisioning: organisation, connection, external id, email and whether
// it is verified, the three names, the groups, the claimed roles and the
// attributes. The order of groups, roles, attribute names and attribute
// values does not matter (they are sorted) and neither does when the
// person authenticated or over which protocol; any other change gives
// another digest. Every field is length-prefixed, so no value can be
// moved across a field boundary without changing the digest.
//
// The canonical form, each string written as uvarint(byte length) || bytes
// and each list as uvarint(count) || its strings in byte order:
// "jitprov/known/claims/v1", organisation, connection, external id, email,
// "verified" or "unverified", given, family and display name, groups,
// roles, then uvarint(attribute count) and per attribute name in byte
// order: the name and its values.
func Digest(id events.Identity) string {
	d := digester{h: sha256.New()}
	d.str(digestDomain)
	d.str(id.OrganizationID)
	d.str(id.ConnectionID)
	d.str(id.ExternalID)
	d.str(id.Email)
	if id.EmailVerified {
		d.str("verified")
	} else {
		d.str("unverified")
	}
	d.str(id.GivenName)
	d.str(id.FamilyName)
	d.str(id.DisplayName)
	d.set(id.Groups)
	d.set(id.Roles)
	names := slices.Sorted(maps.Keys(id.Attributes))
	d.count(len(names))
	for _, name := range names {
		d.str(name)
		d.set(id.Attributes[name])
	}
	return hex.EncodeToString(d.h.Sum(nil))
}

type digester struct{ h hash.Hash }

func (d digester) count(n int) {
	var b [binary.MaxVarintLen64]byte
	d.h.Write(b[:binary.PutUvarint(b[:], uint64(n))])
}

func (d digester) str(s string) {
	d.count(len(s))
	d.h.Write([]byte(s))
}

// set writes a list as a sorted set of strings (duplicates kept: they are
// a difference in what the IdP sent, and a difference only ever costs a
// synchronous login).
func (d digester) set(values []string) {
	sorted := slices.Sorted(slices.Values(values))
	d.count(len(sorted))
	for _, v := range sorted {
		d.str(v)
	}
}
