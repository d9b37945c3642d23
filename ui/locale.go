package ui

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// fallbackLocale is the language every message exists in.
const fallbackLocale = "en"

// Limits of parseAcceptLanguage, so a hostile header costs little.
const (
	maxLanguageRanges = 32
	maxTagLen         = 35 // RFC 5646 §4.4.1 recommends supporting 35 characters
)

// chooseLocale picks the language of a page: the first of prefs that is
// supported, else the best supported range of the Accept-Language header,
// else the default locale.
func (p *Pages) chooseLocale(prefs []string, acceptLanguage string) string {
	for _, tag := range prefs {
		if l, ok := matchLocale(tag); ok {
			return l
		}
	}
	if acceptLanguage != "" {
		for _, tag := range parseAcceptLanguage(acceptLanguage) {
			if l, ok := matchLocale(tag); ok {
				return l
			}
		}
	}
	return p.defaultLocale
}

// matchLocale returns the supported language for a BCP 47 tag: the tag
// itself if a catalogue has that name, else its base language ("fr-CA" and
// "fr_CA" give "fr"). Tags compare case-insensitively.
func matchLocale(tag string) (string, bool) {
	tag = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(tag), "_", "-"))
	if tag == "" {
		return "", false
	}
	if _, ok := catalog[tag]; ok {
		return tag, true
	}
	base, _, _ := strings.Cut(tag, "-")
	if _, ok := catalog[base]; ok {
		return base, true
	}
	return "", false
}

// parseAcceptLanguage returns the language tags of an Accept-Language
// header (RFC 9110 §12.5.4), lower-cased, most preferred first. Ranges with
// q=0, a malformed q, a malformed tag and the wildcard "*" are left out;
// equal weights keep the header's order. Only the first maxLanguageRanges
// ranges are read.
func parseAcceptLanguage(h string) []string {
	type weighted struct {
		tag string
		q   float64
	}
	var ranges []weighted
	for n := 0; h != "" && n < maxLanguageRanges; n++ {
		var part string
		part, h, _ = strings.Cut(h, ",")
		tag, params, _ := strings.Cut(part, ";")
		tag = strings.ToLower(strings.Trim(tag, " \t"))
		if tag == "" || tag == "*" || !validTag(tag) {
			continue
		}
		q, ok := quality(params)
		if !ok || q == 0 {
			continue
		}
		ranges = append(ranges, weighted{tag, q})
	}
	slices.SortStableFunc(ranges, func(a, b weighted) int { return cmp.Compare(b.q, a.q) })
	tags := make([]string, len(ranges))
	for i, r := range ranges {
		tags[i] = r.tag
	}
	return tags
}

// validTag reports whether tag looks like a language range: ASCII letters,
// digits and hyphens, starting with a letter, at most maxTagLen long.
func validTag(tag string) bool {
	if len(tag) > maxTagLen || !('a' <= tag[0] && tag[0] <= 'z') {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// quality returns the weight in the parameters of a language range (the
// text after its first ';'): 1 without a q parameter, false when q is not a
// number between 0 and 1.
func quality(params string) (float64, bool) {
	q := 1.0
	for params != "" {
		var param string
		param, params, _ = strings.Cut(params, ";")
		name, value, _ := strings.Cut(strings.Trim(param, " \t"), "=")
		if !strings.EqualFold(strings.TrimRight(name, " \t"), "q") {
			continue
		}
		f, err := strconv.ParseFloat(strings.Trim(value, " \t"), 64)
		if err != nil || !(f >= 0 && f <= 1) { // also false for NaN
			return 0, false
		}
		q = f
	}
	return q, true
}
