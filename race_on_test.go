//go:build race

package oauthd_test

// raceDetector is true when the tests run with -race, which makes every
// request several times slower: the long trials run fewer rounds.
const raceDetector = true
