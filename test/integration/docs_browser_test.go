package integration

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tideserve/tide/internal/servertest"
)

// TestDocsPageInABrowser: headless Chromium opens the real tide-server's /docs,
// expands POST /predict, presses "Try it out" and "Execute", and the page shows
// a 200 with the prediction. TIDE_DOCS_SCREENSHOT=PATH.png keeps a picture of the
// answered operation (docs/images/docs-predict.png is one).
func TestDocsPageInABrowser(t *testing.T) {
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		need(t, "chromium") // skips, or fails under TIDE_REQUIRE_INTEGRATION=1
	}
	bin := servertest.Build(t)
	srv := servertest.Serve(t, bin, fraudModel)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		// No network beyond the server under test: Chromium's own background
		// fetches would only fail, slowly.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	open := chromedp.CSS(`.opblock.is-open`)
	err := chromedp.Do(browser,
		chromedp.Navigate("http://"+srv.HTTP+"/docs"),
		chromedp.WaitVisible(chromedp.CSS(`.opblock-summary-path[data-path="/predict"]`)),
		chromedp.Click(chromedp.CSS(`.opblock-summary-path[data-path="/predict"]`)),
		chromedp.WaitVisible(open+` .try-out__btn`),
		chromedp.Click(open+` .try-out__btn`),
		chromedp.WaitVisible(open+` .btn.execute`),
		chromedp.Click(open+` .btn.execute`),
		chromedp.WaitVisible(open+` .live-responses-table tbody .response-col_status`),
		chromedp.ScrollIntoView(open),
	)
	if err != nil {
		t.Fatalf("driving /docs in Chromium: %v\nserver log:\n%s", err, srv.Logs())
	}
	status, err := chromedp.Run(browser, chromedp.Text(open+` .live-responses-table tbody .response-col_status`))
	if err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(browser, chromedp.Text(open+` .live-responses-table tbody .response-col_description`))
	if err != nil {
		t.Fatal(err)
	}
	// The picture is the request and its answer: the static list of possible
	// responses below them is hidden first.
	if _, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.querySelectorAll(".opblock.is-open .responses-table:not(.live-responses-table)").forEach(function (e) { e.style.display = "none" }); true`)); err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(browser, chromedp.Screenshot(open))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(status) != "200" || !strings.Contains(body, `"prediction"`) {
		t.Fatalf("the page's Execute got status %q, body %q; want 200 with the prediction", status, body)
	}
	if p := os.Getenv("TIDE_DOCS_SCREENSHOT"); p != "" {
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", p)
	}
}
