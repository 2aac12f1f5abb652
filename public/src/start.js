/* start.js — which role this copy of the file plays: stream.html loads it
 * with data-meteor-frame (the frame role, frame.js); every other page gets
 * the Meteor API (the page role, page.js). Runs last, when every part of
 * the file is defined. */

var script = document.currentScript;
if (script && script.hasAttribute('data-meteor-frame')) startFrame();
else startPage();
