from driver.main import main

main()
