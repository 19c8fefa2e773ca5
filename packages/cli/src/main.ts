#!/usr/bin/env node
console.log('warren')
