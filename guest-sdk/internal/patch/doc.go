// Package patch creates and applies JSON merge patches (RFC 7386) and applies
// JSON patches (RFC 6902) on decoded JSON values (map[string]any, []any,
// string, float64, bool, nil), without dependencies beyond the standard library.
//
// Guarantees:
//   - Apply(doc, CreateMerge(doc, modified)) equals modified for any two JSON
//     objects.
//   - Inputs are never modified; results share no maps or slices with them.
//   - A JSON patch is all-or-nothing: a failing operation returns an error and
//     no partial result.
package patch
