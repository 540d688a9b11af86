// Sphinx's search shows each hit's text as it is in the page, formulas mostly as \( ... \), but a title (from the
// search index or the page's header) as bare LaTeX (\mathcal{L}_{route}). Once the results are in, bare LaTeX gets
// its delimiters back and the site's own MathJax typesets the results.
const LATEX = /\\[A-Za-z]+(?:\{[^{}]*\})*(?:[_^](?:\{[^{}]*\}|\w))*/g;
function delimitLatex(results) {
  const walker = document.createTreeWalker(results, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode())
    if (!node.data.includes('\\(') && !node.data.includes('\\)')) node.data = node.data.replace(LATEX, m => `\\(${m}\\)`);
}
document.addEventListener('DOMContentLoaded', () => {
  const results = document.getElementById('search-results');
  if (!results || !window.MathJax) return;
  let pending = null;
  new MutationObserver(() => {
    clearTimeout(pending);
    pending = setTimeout(() => { delimitLatex(results); window.MathJax.typesetPromise && window.MathJax.typesetPromise([results]); }, 300);
  }).observe(results, {childList: true, subtree: true});
});
