// The ipywidgets HTML manager (1.0.x) typesets widget labels through the MathJax 2 API
// (MathJax.Hub.Queue) whenever window.MathJax exists; the book loads MathJax 3. Give it
// a MathJax 2 face that forwards to MathJax 3, so labels are typeset and nothing throws.
(function () {
  function shim() {
    var mj = window.MathJax;
    if (mj && !mj.Hub) {
      mj.Hub = {
        Queue: function (job) {
          var element = job && job[2];
          if (element && window.MathJax.typesetPromise) {
            window.MathJax.typesetPromise([element]).catch(function () {});
          }
        },
      };
    }
  }
  shim();
  document.addEventListener("DOMContentLoaded", shim);
})();
