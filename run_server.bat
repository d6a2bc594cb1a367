@echo off
rem Starts the Sala rendezvous server; arguments are passed to "sala-rendezvous start".
rem Example: run_server.bat --host 0.0.0.0 --port 7420
setlocal
node --version >nul 2>&1
if errorlevel 1 goto nonode
if not exist "%~dp0dist\rendezvous\cli.js" goto notinstalled
node "%~dp0dist\rendezvous\cli.js" start %*
exit /b %errorlevel%

:notinstalled
echo Sala is not installed yet: run install.bat first.
exit /b 1

:nonode
echo Sala needs Node.js LTS (version 20 or newer). Install it from https://nodejs.org, then run install.bat.
exit /b 1
