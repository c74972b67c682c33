/* test_llm_markdown.c - Markdown to Matrix HTML: every construct, and that
 * nothing else gets through unescaped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "llm_markdown.h"

static void expect(const char *md, const char *html)
{
  struct mx_buf b = MX_BUF_INIT(1 << 20);
  assert_int_equal(llm_markdown_to_html(md, &b), MX_OK);
  if (strcmp(mx_buf_cstr(&b), html) != 0)
    fail_msg("for '%s'\n got '%s'\nwant '%s'", md, mx_buf_cstr(&b), html);
  mx_buf_release(&b);
}

static void headings_and_paragraphs(void **state)
{
  (void)state;
  expect("# Title\nsome text\nmore\n\nnext", "<h1>Title</h1>\n<p>some text<br>\nmore</p>\n<p>next</p>");
  expect("### Disk", "<h3>Disk</h3>");
  expect("#nospace", "<p>#nospace</p>");
}

static void inline_styles(void **state)
{
  (void)state;
  expect("**bold** and *em* and _em2_ and `x < y`",
         "<p><strong>bold</strong> and <em>em</em> and <em>em2</em> and <code>x &lt; y</code></p>");
  expect("snake_case_name stays", "<p>snake_case_name stays</p>");
  expect("2 * 3 * 4", "<p>2 * 3 * 4</p>");
  expect("`**not bold**`", "<p><code>**not bold**</code></p>");
}

static void lists(void **state)
{
  (void)state;
  expect("- one\n- **two**\n\n1. a\n2. b", "<ul>\n<li>one</li>\n<li><strong>two</strong></li>\n</ul>\n<ol>\n<li>a</li>\n<li>b</li>\n</ol>");
  expect("text\n* item", "<p>text</p>\n<ul>\n<li>item</li>\n</ul>");
}

static void code_blocks(void **state)
{
  (void)state;
  expect("```sh\nls -l <dir> && echo \"*hi*\"\n```\nafter",
         "<pre><code class=\"language-sh\">ls -l &lt;dir&gt; &amp;&amp; echo &quot;*hi*&quot;</code></pre>\n<p>after</p>");
  expect("```\nunclosed", "<pre><code>unclosed</code></pre>");
}

static void links_only_safe_schemes(void **state)
{
  (void)state;
  expect("[docs](https://example.org/a?b=1&c=2)", "<p><a href=\"https://example.org/a?b=1&amp;c=2\">docs</a></p>");
  expect("[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>");
}

static void quotes_rules_strikethrough(void **state)
{
  (void)state;
  expect("> quoted\n> *more*\n\nafter", "<blockquote>quoted<br>\n<em>more</em></blockquote>\n<p>after</p>");
  expect("a\n---\nb", "<p>a</p>\n<hr>\n<p>b</p>");
  expect("~~old~~ new", "<p><del>old</del> new</p>");
  expect(">", "<blockquote></blockquote>");
}

static void html_is_escaped(void **state)
{
  (void)state;
  expect("<script>alert('x')</script> & <b>", "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;</p>");
  expect("# <img src=x onerror=y>", "<h1>&lt;img src=x onerror=y&gt;</h1>");
  expect("", "");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(headings_and_paragraphs), cmocka_unit_test(inline_styles),
      cmocka_unit_test(lists),                   cmocka_unit_test(code_blocks),
      cmocka_unit_test(links_only_safe_schemes), cmocka_unit_test(html_is_escaped),
      cmocka_unit_test(quotes_rules_strikethrough),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
