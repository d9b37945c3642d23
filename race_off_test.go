//go:build !race

package oauthd_test

// raceDetector is true when the tests run with -race.
const raceDetector = false
