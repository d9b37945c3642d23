package oauthd

import (
	"sync"
	"time"
)

// answerReplayTTL is how long the answer to a consent decision is kept for
// the same browser submitting the same decision again.
const answerReplayTTL = 30 * time.Second

// maxAnswers bounds the answers kept; past it a new one is not kept (the
// second submit then gets the "already answered" page, as without replay).
const maxAnswers = 10_000

// answerCache keeps, for a short time and in this node's memory only, the
// authorization response sent for a consent decision, by browser, request
// and decision. A decision submitted twice (a double click without
// JavaScript: the browser drops the first answer's redirect for the second
// submit's) gets the same answer, with the same code, instead of a page
// saying the request was already answered while the client waits for a
// redirect that never comes. Nothing new is issued: the code is still
// single use. Another decision for the same request is still refused.
type answerCache struct {
	mu sync.Mutex
	m  map[answerKey]answer
}

type answerKey struct{ browserHash, requestID, action string }

type answer struct {
	ar      *AuthRequest
	ps      []Param
	expires time.Time
}

func (c *answerCache) put(ar *AuthRequest, action string, ps []Param, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[answerKey]answer{}
	}
	if len(c.m) >= maxAnswers {
		for k, a := range c.m {
			if !now.Before(a.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxAnswers {
			return
		}
	}
	c.m[answerKey{ar.BrowserHash, ar.ID, action}] = answer{ar: ar, ps: ps, expires: now.Add(answerReplayTTL)}
}

func (c *answerCache) get(browserHash, requestID, action string, now time.Time) (answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := answerKey{browserHash, requestID, action}
	a, ok := c.m[k]
	if ok && !now.Before(a.expires) {
		delete(c.m, k)
		return answer{}, false
	}
	return a, ok
}
