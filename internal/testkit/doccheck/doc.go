// Package doccheck has no code of its own: its tests keep the repository's
// Markdown true to the repository. Every relative link in README.md,
// docs/**/*.md and every README.md resolves to a file here (and its
// #anchor to a heading), nothing points outside the repository, and every
// `make` target and program flag the README shows exists, and every code
// block the README quotes from a file ("// From <path>") matches that file.
package doccheck
